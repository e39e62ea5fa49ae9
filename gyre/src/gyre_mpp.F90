!> @file gyre_mpp.F90
!> @brief 2-D MPI domain decomposition of the closed basin, halo exchange, gathers and reductions, error stops.
!>
!> The global interior grid (nn_nx, nn_ny) is split into jpni x jpnj boxes, unevenly when needed (the first
!> mod(nn_nx,jpni) columns of ranks get one more point). Local arrays carry nn_hls halo points on each side;
!> outside the basin the halo is land and is never written. Rank r owns the tile (mod(r,jpni), r/jpni).
module gyre_mpp
   use mpi
   use gyre_par
   implicit none
   private

   public :: mpp_init, mpp_dims, lbc_lnk, lbc_lnk_2d, mpp_gather, mpp_max, mpp_sum_int
   public :: ctl_stop, ctl_warn, mpp_barrier

   integer, public :: mpi_comm_oce = MPI_COMM_NULL  !< the model's communicator (from the bridge or MPI_COMM_WORLD)
   integer, public :: nrank = 0                 !< rank in mpi_comm_oce
   integer, public :: nsize = 1                 !< number of ranks in mpi_comm_oce
   logical, public :: lwp = .true.              !< .true. on the printing rank (rank 0)
   integer, public :: ni = 0, nj = 0            !< interior extent of this rank's tile
   integer, public :: nimpp = 0, njmpp = 0      !< 0-based global offset of the tile's first interior point
   integer, public :: ipi = 0, ipj = 0          !< tile coordinates of this rank (0-based)
   integer, allocatable, public :: nimppt(:), njmppt(:), nit(:), njt(:)  !< offsets and extents of every rank (0-based rank index)

   !> hook called by ctl_stop instead of MPI_Finalize/MPI_Abort (set by gyre_cpl when the bridge is active)
   procedure(abort_iface), pointer, public :: abort_hook => null()
   abstract interface
      subroutine abort_iface(cd_msg)
         character(len=*), intent(in) :: cd_msg   !< message to print before aborting the whole job
      end subroutine abort_iface
   end interface

   integer :: nowe = MPI_PROC_NULL, noea = MPI_PROC_NULL, noso = MPI_PROC_NULL, nono = MPI_PROC_NULL  ! neighbours
   real(wp), allocatable :: sbufw(:), sbufe(:), rbufw(:), rbufe(:), sbufs(:), sbufn(:), rbufs(:), rbufn(:)
   integer :: nlbc_cap = 0                      ! capacity (fields) of the halo buffers

contains

   !> Set the communicator, choose jpni x jpnj and compute every rank's tile.
   subroutine mpp_init(kcomm)
      integer, intent(in) :: kcomm              !< the model's communicator
      integer :: ierr, jr, idims(2)
      character(len=lc) :: cl
      mpi_comm_oce = kcomm
      call MPI_Comm_rank(kcomm, nrank, ierr)
      call MPI_Comm_size(kcomm, nsize, ierr)
      lwp = (nrank == 0)
      idims = [jpni, jpnj]
      if (jpni <= 0 .and. jpnj <= 0) then
         idims = 0
         call MPI_Dims_create(nsize, 2, idims, ierr)
         jpni = idims(1) ; jpnj = idims(2)
      else if (jpni <= 0) then
         jpni = nsize / max(jpnj, 1)
      else if (jpnj <= 0) then
         jpnj = nsize / max(jpni, 1)
      end if
      if (jpni * jpnj /= nsize) then
         write(cl, '(a,i0,a,i0,a,i0,a)') '&namdom: jpni*jpnj = ', jpni, '*', jpnj, ' does not match the ', nsize, ' MPI ranks'
         call ctl_stop(trim(cl))
      end if
      allocate(nimppt(0:nsize-1), njmppt(0:nsize-1), nit(0:nsize-1), njt(0:nsize-1))
      do jr = 0, nsize - 1
         call mpp_dims(jr, nimppt(jr), njmppt(jr), nit(jr), njt(jr))
      end do
      ipi = mod(nrank, jpni) ; ipj = nrank / jpni
      nimpp = nimppt(nrank) ; njmpp = njmppt(nrank) ; ni = nit(nrank) ; nj = njt(nrank)
      if (minval(nit) < nn_hls .or. minval(njt) < nn_hls) then
         write(cl, '(a,i0,a,i0,a,i0,a,i0,a,i0)') '&namdom: tiles too small: ', nn_nx, 'x', nn_ny, ' on ', jpni, 'x', jpnj, &
            & ' ranks gives tiles narrower than the halo width ', nn_hls
         call ctl_stop(trim(cl))
      end if
      if (ipi > 0)        nowe = nrank - 1
      if (ipi < jpni - 1) noea = nrank + 1
      if (ipj > 0)        noso = nrank - jpni
      if (ipj < jpnj - 1) nono = nrank + jpni
   end subroutine mpp_init

   !> Tile of rank kr: 0-based offsets and interior extents (uneven splits: the first ranks get one more point).
   pure subroutine mpp_dims(kr, ki0, kj0, kni, knj)
      integer, intent(in)  :: kr                 !< rank (0-based)
      integer, intent(out) :: ki0, kj0           !< 0-based global offset of the first interior point
      integer, intent(out) :: kni, knj           !< interior extent
      integer :: ii, ij
      ii = mod(kr, jpni) ; ij = kr / jpni
      call split1d(nn_nx, jpni, ii, ki0, kni)
      call split1d(nn_ny, jpnj, ij, kj0, knj)
   contains
      !> Split kn points into kp parts, the first mod(kn,kp) one point longer.
      pure subroutine split1d(kn, kp, kk, k0, kl)
         integer, intent(in)  :: kn             !< number of points
         integer, intent(in)  :: kp             !< number of parts
         integer, intent(in)  :: kk             !< part index (0-based)
         integer, intent(out) :: k0             !< 0-based offset of the part
         integer, intent(out) :: kl             !< length of the part
         integer :: ib, ir
         ib = kn / kp ; ir = mod(kn, kp)
         kl = ib + merge(1, 0, kk < ir)
         k0 = kk * ib + min(kk, ir)
      end subroutine split1d
   end subroutine mpp_dims

   !> Fill the halos of a stack of fields from the neighbouring tiles (closed basin: no periodicity).
   subroutine lbc_lnk(pf)
      real(wp), intent(inout) :: pf(1-nn_hls:, 1-nn_hls:, :)   !< fields (ni+2h, nj+2h, nf); interior is read, halo written
      integer :: inf, isz, ireq(4), ierr, jf, jj, ji, ic
      integer, parameter :: h = nn_hls
      if (nsize == 1) return
      inf = size(pf, 3)
      isz = max(h * nj, h * (ni + 2*h)) * inf
      if (.not. allocated(sbufw) .or. nlbc_cap < isz) then
         if (allocated(sbufw)) deallocate(sbufw, sbufe, rbufw, rbufe, sbufs, sbufn, rbufs, rbufn)
         allocate(sbufw(isz), sbufe(isz), rbufw(isz), rbufe(isz), sbufs(isz), sbufn(isz), rbufs(isz), rbufn(isz))
         nlbc_cap = isz
      end if
      ! --- east-west, interior rows only
      isz = h * nj * inf
      call MPI_Irecv(rbufw, isz, MPI_DOUBLE_PRECISION, nowe, 1, mpi_comm_oce, ireq(1), ierr)
      call MPI_Irecv(rbufe, isz, MPI_DOUBLE_PRECISION, noea, 2, mpi_comm_oce, ireq(2), ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, nj ; do ji = 1, h
         ic = ic + 1
         sbufw(ic) = pf(ji, jj, jf)
         sbufe(ic) = pf(ni-h+ji, jj, jf)
      end do ; end do ; end do
      call MPI_Isend(sbufe, isz, MPI_DOUBLE_PRECISION, noea, 1, mpi_comm_oce, ireq(3), ierr)
      call MPI_Isend(sbufw, isz, MPI_DOUBLE_PRECISION, nowe, 2, mpi_comm_oce, ireq(4), ierr)
      call MPI_Waitall(4, ireq, MPI_STATUSES_IGNORE, ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, nj ; do ji = 1, h
         ic = ic + 1
         if (nowe /= MPI_PROC_NULL) pf(ji-h, jj, jf) = rbufw(ic)
         if (noea /= MPI_PROC_NULL) pf(ni+ji, jj, jf) = rbufe(ic)
      end do ; end do ; end do
      ! --- north-south, full rows including the east-west halos (fills the corners)
      isz = h * (ni + 2*h) * inf
      call MPI_Irecv(rbufs, isz, MPI_DOUBLE_PRECISION, noso, 3, mpi_comm_oce, ireq(1), ierr)
      call MPI_Irecv(rbufn, isz, MPI_DOUBLE_PRECISION, nono, 4, mpi_comm_oce, ireq(2), ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, h ; do ji = 1-h, ni+h
         ic = ic + 1
         sbufs(ic) = pf(ji, jj, jf)
         sbufn(ic) = pf(ji, nj-h+jj, jf)
      end do ; end do ; end do
      call MPI_Isend(sbufn, isz, MPI_DOUBLE_PRECISION, nono, 3, mpi_comm_oce, ireq(3), ierr)
      call MPI_Isend(sbufs, isz, MPI_DOUBLE_PRECISION, noso, 4, mpi_comm_oce, ireq(4), ierr)
      call MPI_Waitall(4, ireq, MPI_STATUSES_IGNORE, ierr)
      ic = 0
      do jf = 1, inf ; do jj = 1, h ; do ji = 1-h, ni+h
         ic = ic + 1
         if (noso /= MPI_PROC_NULL) pf(ji, jj-h, jf) = rbufs(ic)
         if (nono /= MPI_PROC_NULL) pf(ji, nj+jj, jf) = rbufn(ic)
      end do ; end do ; end do
   end subroutine lbc_lnk

   !> Halo exchange of a single 2-D field.
   subroutine lbc_lnk_2d(pf)
      real(wp), intent(inout), target, contiguous :: pf(1-nn_hls:, 1-nn_hls:)   !< field (ni+2h, nj+2h)
      real(wp), pointer :: zp(:,:,:)
      zp(1-nn_hls:ni+nn_hls, 1-nn_hls:nj+nn_hls, 1:1) => pf
      call lbc_lnk(zp)
   end subroutine lbc_lnk_2d

   !> Gather the interior of a local 2-D field into a global (nn_nx, nn_ny) array on rank 0.
   subroutine mpp_gather(pin, pglo)
      real(wp), intent(in)  :: pin(1-nn_hls:, 1-nn_hls:)   !< local field with halos
      real(wp), intent(out) :: pglo(:,:)                   !< global field (nn_nx, nn_ny), defined on rank 0 only
      real(wp), allocatable :: zs(:), zr(:)
      integer, allocatable :: icnt(:), idsp(:)
      integer :: ierr, jr, ji, jj, ic
      if (nsize == 1) then
         pglo(1:ni, 1:nj) = pin(1:ni, 1:nj)
         return
      end if
      allocate(zs(ni*nj), icnt(0:nsize-1), idsp(0:nsize-1))
      zs = reshape(pin(1:ni, 1:nj), [ni*nj])
      icnt = nit * njt
      idsp(0) = 0
      do jr = 1, nsize - 1
         idsp(jr) = idsp(jr-1) + icnt(jr-1)
      end do
      allocate(zr(merge(nn_nx*nn_ny, 1, lwp)))
      call MPI_Gatherv(zs, ni*nj, MPI_DOUBLE_PRECISION, zr, icnt, idsp, MPI_DOUBLE_PRECISION, 0, mpi_comm_oce, ierr)
      if (lwp) then
         do jr = 0, nsize - 1
            ic = idsp(jr)
            do jj = 1, njt(jr) ; do ji = 1, nit(jr)
               ic = ic + 1
               pglo(nimppt(jr)+ji, njmppt(jr)+jj) = zr(ic)
            end do ; end do
         end do
      end if
   end subroutine mpp_gather

   !> Global maximum of a vector (element-wise, order-independent hence decomposition-independent).
   subroutine mpp_max(pv)
      real(wp), intent(inout) :: pv(:)          !< local values in, global maxima out
      integer :: ierr
      if (nsize > 1) call MPI_Allreduce(MPI_IN_PLACE, pv, size(pv), MPI_DOUBLE_PRECISION, MPI_MAX, mpi_comm_oce, ierr)
   end subroutine mpp_max

   !> Global sum of an integer vector (exact).
   subroutine mpp_sum_int(kv)
      integer, intent(inout) :: kv(:)           !< local values in, global sums out
      integer :: ierr
      if (nsize > 1) call MPI_Allreduce(MPI_IN_PLACE, kv, size(kv), MPI_INTEGER, MPI_SUM, mpi_comm_oce, ierr)
   end subroutine mpp_sum_int

   !> Barrier on the model communicator.
   subroutine mpp_barrier()
      integer :: ierr
      if (nsize > 1) call MPI_Barrier(mpi_comm_oce, ierr)
   end subroutine mpp_barrier

   !> Stop the run with a message. Collective by default (every rank calls it, rank 0 prints, exit code 1);
   !! with ld_local=.true. only the calling rank knows, prints with its rank, and the whole job is aborted.
   subroutine ctl_stop(cd_msg, ld_local)
      character(len=*), intent(in) :: cd_msg    !< what went wrong, naming the input or the field at fault
      logical, intent(in), optional :: ld_local !< only this rank detected the error
      logical :: llloc
      integer :: ierr
      logical :: llinit
      llloc = .false. ; if (present(ld_local)) llloc = ld_local
      if (lwp .or. llloc) then
         write(*, '(a)') ''
         write(*, '(a,i0,a)') ' ===>>> : E R R O R  (gyre rank ', nrank, ')'
         write(*, '(a)') '          '//trim(cd_msg)
         write(0, '(a,i0,a)') 'gyre: ERROR (rank ', nrank, '): '//trim(cd_msg)
         flush(6) ; flush(0)
      end if
      if (associated(abort_hook)) call abort_hook(cd_msg)
      call MPI_Initialized(llinit, ierr)
      if (llinit) then
         if (llloc) then
            call MPI_Abort(MPI_COMM_WORLD, 1, ierr)
         else
            call MPI_Barrier(mpi_comm_oce, ierr)
            call MPI_Finalize(ierr)
         end if
      end if
      stop 1
   end subroutine ctl_stop

   !> Print a warning (rank 0, or the calling rank with ld_local).
   subroutine ctl_warn(cd_msg, ld_local)
      character(len=*), intent(in) :: cd_msg    !< the warning
      logical, intent(in), optional :: ld_local !< print from this rank whatever its number
      logical :: llloc
      llloc = .false. ; if (present(ld_local)) llloc = ld_local
      if (lwp .or. llloc) then
         write(*, '(a,i0,a)') ' ===>>> : W A R N I N G  (gyre rank ', nrank, ')'
         write(*, '(a)') '          '//trim(cd_msg)
         flush(6)
      end if
   end subroutine ctl_warn

end module gyre_mpp
