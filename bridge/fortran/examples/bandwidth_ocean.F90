!> Example that doubles as the bandwidth benchmark's ocean side
!! (benchmarks/bench_bridge.py is the Python side and the driver).
!!
!! The ocean ranks split the grid in j. Each repetition times, on the Python
!! side, NITER raw MPI_Send/Recv of exactly the bytes each pair of ranks shares,
!! then NITER bridge put/get of the same field in the copy put mode, then in
!! the direct put mode, each phase between barriers.
!! Usage: bandwidth_ocean NX NY NLEV PXW PYW NITER NREP
!!   PXW x PYW: the Python side's layout, to size the raw messages.
program bandwidth_ocean
   use obridge
   use, intrinsic :: iso_fortran_env, only: dp => real64
   use mpi
   implicit none
   integer :: nx, ny, nlev, pxw, pyw, niter, nrep, comm, rank, nranks, ierr, id, rep, it, q, nw, mode
   integer :: i0, j0, ni, nj, wi0, wj0, wni, wnj, ov_i, ov_j
   real(dp), allocatable :: fld(:, :, :)
   type :: msg_t
      real(dp), allocatable :: a(:)
      integer :: dest = -1
   end type msg_t
   type(msg_t), allocatable :: raw(:)

   call read_args()
   call obr_init('ocean', comm)
   call MPI_Comm_rank(comm, rank, ierr)
   call MPI_Comm_size(comm, nranks, ierr)
   i0 = 0; ni = nx
   call split(ny, nranks, rank, j0, nj)
   call obr_def_partition(nx, ny, i0, j0, ni, nj)
   call obr_def_field('f', OBR_OUT, nlev, id)
   call obr_enddef()
   allocate (fld(ni, nj, nlev))
   call random_number(fld)

   ! raw messages: the overlap with each Python rank, as contiguous buffers
   nw = pxw*pyw
   allocate (raw(nw))
   do q = 0, nw - 1
      call split(nx, pxw, mod(q, pxw), wi0, wni)
      call split(ny, pyw, q/pxw, wj0, wnj)
      ov_i = min(i0 + ni, wi0 + wni) - max(i0, wi0)
      ov_j = min(j0 + nj, wj0 + wnj) - max(j0, wj0)
      raw(q + 1)%dest = nranks + q
      allocate (raw(q + 1)%a(max(ov_i, 0)*max(ov_j, 0)*nlev))
      raw(q + 1)%a = 1._dp
   end do

   do rep = 1, nrep
      call MPI_Barrier(MPI_COMM_WORLD, ierr)
      do it = 1, niter
         do q = 1, nw
            if (size(raw(q)%a) > 0) call MPI_Send(raw(q)%a, size(raw(q)%a), MPI_REAL8, raw(q)%dest, 77, &
                                                  MPI_COMM_WORLD, ierr)
         end do
      end do
      call MPI_Barrier(MPI_COMM_WORLD, ierr)
      do mode = 1, 2   ! the bridge, copy then direct put mode
         call obr_set_put_mode(trim(merge('copy  ', 'direct', mode == 1)))
         call MPI_Barrier(MPI_COMM_WORLD, ierr)
         do it = 1, niter
            call obr_put(id, ((rep - 1)*2 + mode - 1)*niter + it, fld)
         end do
         call MPI_Barrier(MPI_COMM_WORLD, ierr)
      end do
   end do
   call obr_finalize()

contains

   subroutine read_args()
      character(len=32) :: arg
      integer :: k, vals(7)
      do k = 1, 7
         call get_command_argument(k, arg)
         read (arg, *) vals(k)
      end do
      nx = vals(1); ny = vals(2); nlev = vals(3); pxw = vals(4); pyw = vals(5); niter = vals(6); nrep = vals(7)
   end subroutine read_args

   subroutine split(n, p, k, off, ext)
      integer, intent(in) :: n, p, k             !< points, parts, this part
      integer, intent(out) :: off, ext           !< its 0-based offset and extent
      ext = n/p + merge(1, 0, k < mod(n, p))
      off = k*(n/p) + min(k, mod(n, p))
   end subroutine split

end program bandwidth_ocean
